"""Dielectric properties of tissues at the Larmor frequency, from the parametric model of
Gabriel, Lau and Gabriel (Phys Med Biol 1996;41:2271, Table 1).

Each tissue is a sum of four Cole-Cole dispersions plus ionic conduction:

    eps(w) = eps_inf + sum_n d_eps_n / (1 + (i w tau_n)^(1 - alpha_n)) + sigma_i / (i w eps0)

(time convention exp(i w t): losses make the imaginary part negative). The relative
permittivity is Re(eps) and the effective conductivity sigma = -Im(eps) w eps0 (S/m). At
64, 128 and 298 MHz (1.5, 3 and 7 T) these give, e.g., muscle 72 / 64 / 58 and grey matter
97 / 73 / 60 (relative permittivity), while fat and bone stay near 6 and 15: the
contrast that shapes B1+ inside a body (phantoms.transmit).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

EPS0 = 8.8541878128e-12      # F/m
MU0 = 1.25663706212e-6       # H/m
GAMMA_BAR_HZ_PER_T = 42.577e6


@dataclass(frozen=True)
class ColeCole:
    """Gabriel 1996 parameters: eps_inf, (delta_eps, tau s, alpha) per dispersion, static sigma (S/m)."""
    eps_inf: float
    terms: tuple[tuple[float, float, float], ...]
    sigma_s_per_m: float

    def complex_permittivity(self, f_hz: float) -> complex:
        w = 2.0 * math.pi * f_hz
        eps = complex(self.eps_inf)
        for d_eps, tau, alpha in self.terms:
            eps += d_eps / (1.0 + (1j * w * tau) ** (1.0 - alpha))
        return eps + self.sigma_s_per_m / (1j * w * EPS0)

    def at(self, f_hz: float) -> tuple[float, float]:
        """(relative permittivity, effective conductivity S/m) at f_hz."""
        eps = self.complex_permittivity(f_hz)
        return eps.real, -eps.imag * 2.0 * math.pi * f_hz * EPS0


# Gabriel et al. 1996, Table 1 (tau in seconds: ps, ns, us, ms columns converted).
GABRIEL: dict[str, ColeCole] = {
    "muscle": ColeCole(4.0, ((50.0, 7.234e-12, 0.1), (7000.0, 353.678e-9, 0.1), (1.2e6, 318.31e-6, 0.1),
                             (2.5e7, 2.274e-3, 0.0)), 0.2),
    "fat": ColeCole(2.5, ((3.0, 7.958e-12, 0.2), (15.0, 15.915e-9, 0.1), (3.3e4, 159.155e-6, 0.05),
                          (1.0e7, 7.958e-3, 0.01)), 0.01),                       # not infiltrated
    "grey matter": ColeCole(4.0, ((45.0, 7.958e-12, 0.1), (400.0, 15.915e-9, 0.15), (2.0e5, 106.103e-6, 0.22),
                                  (4.5e7, 5.305e-3, 0.0)), 0.02),
    "white matter": ColeCole(4.0, ((32.0, 7.958e-12, 0.1), (100.0, 7.958e-9, 0.1), (4.0e4, 53.052e-6, 0.3),
                                   (3.5e7, 7.958e-3, 0.02)), 0.02),
    "csf": ColeCole(4.0, ((65.0, 7.958e-12, 0.1), (40.0, 1.592e-9, 0.0)), 2.0),
    "blood": ColeCole(4.0, ((56.0, 8.377e-12, 0.1), (5200.0, 132.629e-9, 0.1)), 0.7),
    "cortical bone": ColeCole(2.5, ((10.0, 13.263e-12, 0.2), (180.0, 79.577e-9, 0.2), (5.0e3, 159.155e-6, 0.2),
                                    (1.0e5, 15.915e-3, 0.0)), 0.02),
    "bone marrow": ColeCole(2.5, ((3.0, 7.958e-12, 0.2), (25.0, 15.915e-9, 0.1), (5.0e3, 1.592e-3, 0.1),
                                  (2.0e6, 15.915e-3, 0.1)), 0.001),               # not infiltrated
    "cartilage": ColeCole(4.0, ((38.0, 13.263e-12, 0.15), (2500.0, 144.686e-9, 0.15), (1.0e5, 318.31e-6, 0.1),
                                (4.0e7, 15.915e-3, 0.0)), 0.15),
    "tendon": ColeCole(4.0, ((42.0, 12.243e-12, 0.1), (60.0, 6.366e-9, 0.1), (6.0e4, 318.31e-6, 0.22),
                             (2.0e7, 1.326e-3, 0.0)), 0.25),
    "liver": ColeCole(4.0, ((39.0, 8.842e-12, 0.1), (6000.0, 530.516e-9, 0.2), (5.0e4, 22.736e-6, 0.2),
                            (3.0e7, 15.915e-3, 0.05)), 0.02),
    "spleen": ColeCole(4.0, ((48.0, 7.958e-12, 0.1), (2500.0, 63.662e-9, 0.15), (2.0e5, 265.258e-6, 0.25),
                             (5.0e7, 6.366e-3, 0.0)), 0.03),
    "kidney": ColeCole(4.0, ((47.0, 7.958e-12, 0.1), (3500.0, 198.944e-9, 0.22), (2.5e5, 79.577e-6, 0.22),
                             (3.0e7, 4.547e-3, 0.0)), 0.05),
    "skin": ColeCole(4.0, ((32.0, 7.234e-12, 0.0), (1100.0, 32.481e-9, 0.2)), 0.0002),   # dry skin
    "vitreous humour": ColeCole(4.0, ((65.0, 7.234e-12, 0.0), (30.0, 159.155e-9, 0.1)), 1.5),
}
AIR = (1.0, 0.0)


def larmor_hz(field_t: float) -> float:
    return GAMMA_BAR_HZ_PER_T * float(field_t)


def properties(kind: str, field_t: float) -> tuple[float, float]:
    """(relative permittivity, conductivity S/m) of a Gabriel tissue at the field's Larmor frequency."""
    if kind == "air":
        return AIR
    return GABRIEL[kind].at(larmor_hz(field_t))
