"""Networks that predict quantitative maps from weighted images (papers/000, 001): the
self-attention CNN and the U-Net, acquisition conditioning, the uncertainty head, losses,
training, prediction with the physics-consistency residual, scan-specific refinement and
the model registry with the bundled models (Resources/Models)."""
