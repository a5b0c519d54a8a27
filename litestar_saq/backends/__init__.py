"""Queue backends: one SAQ ``Queue`` subclass per broker. Importing this package imports no broker client."""
