"""Reading inbox files: what the bytes are, cells, legacy text, normalised values, and the
identified submissions."""
