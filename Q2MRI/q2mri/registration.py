"""Rigid registration of one input onto another (SimpleITK): inputs from separate acquisitions
(the SPGRs of a VFA series, MPRAGE/GRE/FLAIR) differ by the patient's motion, which corrupts
every voxel-wise fit and prediction. Mattes mutual information (the images differ in contrast),
three resolution levels, regular-step gradient descent with scales from physical shifts, the
fixed image masked to its body grown by a few voxels; the result maps points of the fixed image to the moving one (ITK's convention), so
resampling the moving image with it puts it on the fixed grid."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import SimpleITK as sitk

from .errors import Q2MRIError
from .io.images import Geometry, Volume


@dataclass
class Registration:
    transform: sitk.Euler3DTransform
    metric: float                     # final Mattes MI (negative: lower is better)
    iterations: int

    @property
    def rotation_deg(self) -> np.ndarray:
        return np.degrees(np.array(self.transform.GetParameters()[:3]))

    @property
    def translation_mm(self) -> np.ndarray:
        return np.array(self.transform.GetParameters()[3:])


def _image(arr: np.ndarray, geom: Geometry) -> sitk.Image:
    a = np.abs(arr) if np.iscomplexobj(arr) else arr
    return geom.apply(sitk.GetImageFromArray(np.ascontiguousarray(a, dtype=np.float32)))


def body_mask(arr: np.ndarray) -> np.ndarray:
    """Voxels above 5 % of the robust maximum, grown by 4 voxels in-plane: the body and its edge
    (the edge carries most of the alignment information), without the far background noise."""
    from scipy import ndimage
    a = np.abs(arr)
    hi = np.percentile(a[np.isfinite(a)], 99.5)
    m = a > 0.05 * hi
    return ndimage.binary_dilation(m, structure=np.ones((1, 3, 3), bool), iterations=4)


def register_rigid(fixed: np.ndarray, fixed_geom: Geometry, moving: np.ndarray, moving_geom: Geometry, *,
                   progress: Callable[[int, int], None] | None = None, iterations: int = 300,
                   seed: int = 0) -> Registration:
    """The rigid (Euler 3D) transform that puts `moving` onto `fixed`."""
    f, m = _image(fixed, fixed_geom), _image(moving, moving_geom)
    if min(fixed.shape) < 4 and fixed.shape[0] < 4:
        raise Q2MRIError("rigid 3D registration needs at least 4 slices; register 2D images in a 2D tool")
    init = sitk.CenteredTransformInitializer(f, m, sitk.Euler3DTransform(),
                                             sitk.CenteredTransformInitializerFilter.GEOMETRY)
    reg = sitk.ImageRegistrationMethod()
    reg.SetMetricAsMattesMutualInformation(numberOfHistogramBins=50)
    # every voxel of the (grown) body of the fixed image, in a seeded random order; masking the
    # moving image too, or a tight mask, cut the body's edge out and failed across contrasts
    reg.SetMetricSamplingStrategy(reg.RANDOM)
    reg.SetMetricSamplingPercentage(1.0, seed)
    reg.SetMetricFixedMask(sitk.Cast(_image(body_mask(fixed).astype(np.float32), fixed_geom), sitk.sitkUInt8))
    reg.SetInterpolator(sitk.sitkLinear)
    reg.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=iterations,
                                                 relaxationFactor=0.7)
    reg.SetOptimizerScalesFromPhysicalShift()
    # coarse to fine; the slices stay whole (thick slices of few-slice slabs)
    reg.SetShrinkFactorsPerLevel([4, 2, 1])
    reg.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    reg.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    reg.SetInitialTransform(init, inPlace=False)
    count = {"n": 0}
    total = 3 * iterations

    def tick():
        count["n"] += 1
        if progress:
            progress(min(count["n"], total - 1), total)

    reg.AddCommand(sitk.sitkIterationEvent, tick)
    try:
        out = reg.Execute(f, m)
    except RuntimeError as e:
        raise Q2MRIError(f"registration failed ({str(e).strip().splitlines()[-1][:120]}); check that the two images "
                         "show the same anatomy, or leave out --register") from None
    if progress:
        progress(total, total)
    tx = sitk.Euler3DTransform()
    composite = sitk.CompositeTransform(out)
    final = composite.GetNthTransform(0) if composite.GetNumberOfTransforms() else out
    try:
        tx = sitk.Euler3DTransform(final)
    except (RuntimeError, TypeError):
        tx.SetCenter(init.GetCenter())
        tx.SetParameters(out.GetParameters())
    return Registration(tx, float(reg.GetMetricValue()), int(reg.GetOptimizerIteration()))


def resample_onto(moving: np.ndarray, moving_geom: Geometry, fixed_geom: Geometry,
                  transform: sitk.Transform) -> np.ndarray:
    """The moving image on the fixed grid through the transform (linear; complex as real + imaginary)."""
    ref = fixed_geom.apply(sitk.Image(list(fixed_geom.size), sitk.sitkFloat32))
    parts = [moving.real, moving.imag] if np.iscomplexobj(moving) else [moving]
    out = [sitk.GetArrayFromImage(sitk.Resample(_image(p, moving_geom), ref, transform, sitk.sitkLinear, 0.0))
           for p in parts]
    return out[0] + 1j * out[1] if len(out) == 2 else out[0]


def register_volume(fixed: Volume, moving: Volume, **kw) -> tuple[Volume, Registration]:
    """Every 3D volume of `moving` on `fixed`'s grid through the transform found on its first volume."""
    r = register_rigid(fixed.volumes()[0], fixed.geometry, moving.volumes()[0], moving.geometry, **kw)
    vols = [resample_onto(v, moving.geometry, fixed.geometry, r.transform) for v in moving.volumes()]
    arr = vols[0] if moving.array.ndim == 3 else np.stack(vols)
    return Volume(arr.astype(moving.array.dtype if not np.iscomplexobj(arr) else arr.dtype), fixed.geometry,
                  moving.path, moving.tags), r
