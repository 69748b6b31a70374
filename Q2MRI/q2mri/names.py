"""Names the command line offers as choices, kept light: building the parser (q2mri --help,
q2mri --version) must not import torch, SimpleITK or the fitting code. Each list equals the
registry it names (models.tasks.TASKS, phantoms.protocols.PRESETS, synthesis.SEQUENCES,
phantoms.imaging.FILTERS); a test checks that they agree."""

TASK_NAMES = ("spgr-t1", "t2star", "fatwater-ipop", "brain-t1t2")
PROTOCOL_NAMES = ("knee-vfa", "knee-t2star", "liver-me", "brain-qiu")
SEQUENCE_NAMES = ("spgr", "gre", "se", "ir", "flair", "mprage")
KSPACE_FILTERS = ("none", "hamming", "hann", "fermi")
