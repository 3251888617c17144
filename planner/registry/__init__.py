"""Reading a registry folder: file schemas, YAML with line numbers, validation, the Fleet."""
