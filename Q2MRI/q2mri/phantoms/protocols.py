"""Named acquisition protocols: the papers' protocols, exactly (tissue-values.md).

A protocol is a list of named acquisitions. Times in ms, angles in degrees.
- knee-vfa (papers/000 A.1): 3D UTE SPGR at FA 5/10/20/30 deg, TE 0.032 ms, TR 20 ms; B1 by
  AFI with TE 0.032 ms, TR1/TR2 20/100 ms, FA 45 deg; matrix 256 x 256 x 36.
- knee-t2star (papers/000 A.1): multi-echo, TE 0.032/4.4/8.8/13.2/17.6/22 ms, TR 28 ms,
  FA 16 deg; plus the 20-deg SPGR of knee-vfa as the T1-weighted input of the t2star task.
- liver-me (papers/000 A.1): multi-echo cones, TE 0.036/1.048/2.060/3.072/4.084/5.096 ms,
  TR 11 ms, FA 3 deg, complex (magnitude and phase); the network inputs are the 1.048 and
  4.084 ms echoes (IP_OP_PAIR).
- brain-qiu (papers/001 2.1): MPRAGE TR 1900, TI 900, TE 2.93 ms, FA 9 deg; GRE TR 3.00 ms,
  FA 18 deg; FLAIR TR 4800, TI 1800, TE 352 ms. Not given in the paper, and assumed here:
  the MPRAGE readout (176 excitations, 7.0 ms spacing, linear order) and the GRE TE (1.5 ms).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..acquisition import Acquisition
from ..errors import Q2MRIError


@dataclass(frozen=True)
class Image:
    """One image of a protocol: a file name stem, its kind and its acquisition."""
    name: str
    kind: str            # spgr, gre_magnitude, gre_complex, afi1, afi2, mprage, flair, se
    acq: Acquisition


@dataclass(frozen=True)
class Protocol:
    """A named list of acquisitions; partial_fourier (fraction of phase-encode lines) and
    kspace_filter (none, hamming, hann, fermi) describe the readout of all of them."""
    name: str
    phantom: str
    images: tuple[Image, ...]
    source: str
    partial_fourier: float = 1.0
    kspace_filter: str = "none"


def _spgr(fa, tr=20.0, te=0.032):
    return Image(f"spgr_fa{int(fa):02d}", "spgr", Acquisition(flip_angle_deg=float(fa), tr_ms=tr, te_ms=te,
                                                              field_strength_t=3.0, sequence="spgr"))


KNEE_VFA_FA = (5.0, 10.0, 20.0, 30.0)
KNEE_T2S_TE = (0.032, 4.4, 8.8, 13.2, 17.6, 22.0)
LIVER_TE = (0.036, 1.048, 2.060, 3.072, 4.084, 5.096)
IP_OP_PAIR = (1.048, 4.084)

PRESETS: dict[str, Protocol] = {
    "knee-vfa": Protocol("knee-vfa", "knee", tuple(_spgr(fa) for fa in KNEE_VFA_FA) + (
        Image("afi_tr1", "afi1", Acquisition(flip_angle_deg=45.0, tr_ms=20.0, te_ms=0.032, field_strength_t=3.0, sequence="afi")),
        Image("afi_tr2", "afi2", Acquisition(flip_angle_deg=45.0, tr_ms=100.0, te_ms=0.032, field_strength_t=3.0, sequence="afi")),
    ), "papers/000 A.1"),
    "knee-t2star": Protocol("knee-t2star", "knee", (_spgr(20.0),) + tuple(
        Image(f"gre_e{i + 1}", "gre_magnitude", Acquisition(flip_angle_deg=16.0, tr_ms=28.0, te_ms=te, field_strength_t=3.0,
                                                           sequence="gre")) for i, te in enumerate(KNEE_T2S_TE)),
        "papers/000 A.1"),
    "liver-me": Protocol("liver-me", "liver", tuple(
        Image(f"me_e{i + 1}", "gre_complex", Acquisition(flip_angle_deg=3.0, tr_ms=11.0, te_ms=te, field_strength_t=3.0,
                                                        sequence="gre")) for i, te in enumerate(LIVER_TE)),
        "papers/000 A.1"),
    "brain-qiu": Protocol("brain-qiu", "brain", (
        Image("mprage", "mprage", Acquisition(flip_angle_deg=9.0, tr_ms=1900.0, ti_ms=900.0, te_ms=2.93, field_strength_t=3.0,
                                              echo_spacing_ms=7.0, n_excitations=176, sequence="mprage")),
        Image("gre", "spgr", Acquisition(flip_angle_deg=18.0, tr_ms=3.0, te_ms=1.5, field_strength_t=3.0, sequence="spgr")),
        Image("flair", "flair", Acquisition(tr_ms=4800.0, ti_ms=1800.0, te_ms=352.0, field_strength_t=3.0, sequence="flair")),
    ), "papers/001 2.1"),
}


def get_protocol(name: str) -> Protocol:
    if name not in PRESETS:
        raise Q2MRIError(f"unknown protocol {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]
