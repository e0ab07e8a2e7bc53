"""Datasets: VideoPose3D file formats, sequence assembly, training windows, synthetic data."""
