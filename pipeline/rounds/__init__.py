"""The rounds an office consolidates; each plugs into the engine through `base.Round`.

Nothing is imported here: the engine loads `base` only, and the rounds tdkt ships are imported
by name when a round is first looked up (`base.BUILT_IN_ROUNDS`). A new round is a module that
defines a `Round` and calls `base.register`, plus its form data.
"""
