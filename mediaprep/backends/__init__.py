"""Backends: one module per library (Pillow, PyAV), and byte sniffing."""
