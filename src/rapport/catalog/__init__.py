"""Products, categories, stores with coordinates, prices."""
