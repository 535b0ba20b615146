"""Form definitions (YAML) and what is derived from them: Pandera schemas and templates."""
