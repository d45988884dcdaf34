"""PAIP Viewer: segment tumour nuclei in H&E tiles with U-Net and ELU-Net models."""
__version__ = "0.2.0"
