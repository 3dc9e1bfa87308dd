"""The U-Net, its checkpoint, and batched prediction."""
