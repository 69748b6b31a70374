"""Networks that predict quantitative maps from weighted images (papers/000, 001), their
losses and building blocks. Work in progress towards the [models] issue: the networks,
conditioning, uncertainty head and losses are here; training, prediction and bundled
models are not yet."""
