"""What a trained network learned: Grad-CAM maps, kernels and feature maps, and the pictures of them."""
