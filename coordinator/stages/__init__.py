"""One module per release stage, named as in DESIGN.md."""
