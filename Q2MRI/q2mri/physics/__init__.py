"""Signal models: one module per sequence, each equation written once (torch; numpy via
the ``signal_model`` wrapper). Fitting, simulation, synthesis and the physics-consistency
loss all call these."""
from .afi import afi, afi_cos_alpha
from .decay import mono_exponential
from .fat import FAT_AMPLITUDES, FAT_PPM, GAMMA_BAR_MHZ_PER_T, fat_frequencies_hz, fat_phasor, in_out_phase_echo_times_ms
from .flair import flair, fluid_null_ti_ms
from .gre import gre_complex, gre_magnitude, spgr_water_fat
from .inversion_recovery import inversion_recovery
from .mprage import mprage, mprage_timing
from .spgr import ernst_angle_deg, spgr
from .spin_echo import spin_echo

__all__ = [
    "afi", "afi_cos_alpha", "mono_exponential", "FAT_AMPLITUDES", "FAT_PPM", "GAMMA_BAR_MHZ_PER_T",
    "fat_frequencies_hz", "fat_phasor", "in_out_phase_echo_times_ms", "flair", "fluid_null_ti_ms",
    "gre_complex", "gre_magnitude", "spgr_water_fat", "inversion_recovery", "mprage", "mprage_timing", "ernst_angle_deg",
    "spgr", "spin_echo",
]
