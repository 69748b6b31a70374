"""BIDS names of Q2MRI's maps (the qMRI derivative suffixes of the BIDS specification where they
exist: T1map, T2map, T2starmap, R2starmap, M0map, TB1map, S0map; PDFFmap and fieldmap (B0 in Hz)
where BIDS has no qMRI map name) and the pipelines of the BIDS App."""
from __future__ import annotations

from ..names import TASK_NAMES

MAP_SUFFIX: dict[str, tuple[str, str]] = {
    "T1": ("", "T1map"),
    "PD": ("", "M0map"),
    "T2": ("", "T2map"),
    "T2s": ("", "T2starmap"),
    "R2s": ("", "R2starmap"),
    "B1": ("", "TB1map"),
    "B0": ("", "fieldmap"),
    "PDFF": ("", "PDFFmap"),
    "S0": ("", "S0map"),
    "water": ("desc-water", "M0map"),
    "fat": ("desc-fat", "M0map"),
}
SUFFIX_MAP = {v[1]: k for k, v in MAP_SUFFIX.items() if not v[0]}

FIT_PIPELINES = ("fit-vfa", "fit-t1-ir", "fit-t2star", "fit-b1-afi", "fit-fatwater")
PIPELINES = FIT_PIPELINES + tuple(f"predict-{t}" for t in TASK_NAMES)

# the maps each fit pipeline writes, its primary map first (auxiliary outputs such as the residual
# are named after it); predict pipelines write their task's targets
FIT_MAPS: dict[str, tuple[str, ...]] = {"fit-vfa": ("T1", "PD"), "fit-t1-ir": ("T1", "PD"),
                                        "fit-t2star": ("T2s", "R2s", "S0"), "fit-b1-afi": ("B1",),
                                        "fit-fatwater": ("PDFF", "R2s", "B0", "water", "fat")}


def pipeline_maps(pipeline: str) -> tuple[str, ...]:
    if pipeline in FIT_MAPS:
        return FIT_MAPS[pipeline]
    from ..models.tasks import TASKS
    return tuple(TASKS[pipeline.removeprefix("predict-")].targets)


def pipeline_desc(pipeline: str) -> str:
    """fit-vfa -> fitvfa (BIDS desc values are alphanumeric)."""
    return pipeline.replace("-", "")
