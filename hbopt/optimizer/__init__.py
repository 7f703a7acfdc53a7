"""Pure optimization core: typed problem, device blocks as sparse matrices, solver backends."""
