"""Complex numbers: complex tensors in and out (complex64 and complex128),
arithmetic, polar form, norms, complex matrix products, views of complex
tensors, and FFTs (computed as real pairs by the frontend)."""

import torch

from .registry import case, randn, register


def crandn(*shape, dtype=torch.complex64):
    return torch.randn(*shape, dtype=dtype)


def _z():
    return (crandn(4, 6),)


def _zw():
    return (crandn(4, 6), crandn(4, 6))


COMPLEX_IN_OUT = {
    "complex_add_mul": (lambda z, w: z * w + z, _zw),
    "complex_sub_div": (lambda z, w: (z - w) / (w + 2.0), _zw),
    "complex_times_imaginary_unit": (lambda z: z * 1j - 0.5j, _z),
    "complex_conj_product": (lambda z: z * z.conj(), _z),
    "complex_neg_reciprocal": (lambda z: -z.reciprocal(), _z),
    "complex_exp": (lambda z: torch.exp(z * 0.5), _z),
    "complex_log": (lambda z: torch.log(z), _z),
    "complex_sqrt": (lambda z: torch.sqrt(z), _z),
    "complex_square_and_cube": (lambda z: (z ** 2, z.pow(3)), _z),
    "complex_fractional_power": (lambda z: z ** 0.5, _z),
    "complex_sgn": (lambda z: torch.sgn(z), _z),
    "complex_where": (lambda z, w: torch.where(z.real > 0, z, w), _zw),
    "complex_equal": (lambda z, w: (z == z, z != w), _zw),
    "complex_matmul": (lambda z, w: z @ w.transpose(0, 1), _zw),
    "complex_bmm": (lambda z, w: torch.bmm(z, w), lambda: (crandn(2, 3, 4), crandn(2, 4, 5))),
    "complex_times_real_matrix": (lambda z, m: z @ m.to(torch.complex64), lambda: (crandn(3, 4), randn(4, 2))),
    "complex_sum_mean": (lambda z: (z.sum(0), z.mean(-1), z.sum()), _z),
    "complex_cumsum": (lambda z: torch.cumsum(z, 1), _z),
    "complex_views": (lambda z: z.transpose(0, 1).reshape(3, 8)[1:, ::2].unsqueeze(0), _z),
    "complex_cat_stack": (lambda z, w: (torch.cat([z, w], 0), torch.stack([z, w], -1)), _zw),
    "complex_split": (lambda z: torch.split(z, 2, dim=1), _z),
    "complex_flip_roll": (lambda z: torch.roll(torch.flip(z, [0]), 1, 1), _z),
    "complex_index_select": (lambda z: torch.index_select(z, 1, torch.tensor([0, 4, 2])), _z),
    "complex_pad": (lambda z: torch.nn.functional.pad(z, (1, 2)), _z),
    "complex128_arithmetic": (lambda z: (z * z + 1.0) / (z.conj() + 3.0),
                              lambda: (crandn(3, 5, dtype=torch.complex128),)),
    "complex128_matmul": (lambda z: z @ z.T,
                          lambda: (crandn(4, 4, dtype=torch.complex128),)),
}

COMPLEX_TO_REAL = {
    "complex_abs_angle": (lambda z: (z.abs(), z.angle()), _z),
    "complex_real_imag": (lambda z: (z.real * 2, z.imag + 1), _z),
    "complex_view_as_real": (lambda z: torch.view_as_real(z * 2), _z),
    "complex_vector_norm": (lambda z: torch.linalg.vector_norm(z), _z),
    "complex_vector_norm_dim": (lambda z: torch.linalg.vector_norm(z, ord=1, dim=1), _z),
    "complex_frobenius_norm": (lambda z: torch.linalg.norm(z), _z),
    "complex_to_real_cast": (lambda z: (z * 2).real.to(torch.float64), _z),
}

REAL_TO_COMPLEX = {
    "complex_from_polar": (lambda r, t: torch.polar(r.abs(), t), lambda: (randn(5), randn(5))),
    "complex_from_parts": (lambda a, b: torch.complex(a, b) * 2, lambda: (randn(5), randn(5))),
    "complex_view_as_complex_round_trip": (
        lambda x: torch.view_as_real(torch.view_as_complex(x) ** 2), lambda: (randn(4, 3, 2),)),
    "complex_cast_from_real": (lambda x: x.to(torch.complex64) * (1 + 2j), lambda: (randn(6),)),
    "complex_rotary_embedding": (
        lambda x, angle: torch.view_as_real(
            torch.view_as_complex(x.reshape(2, 8, 4, 2)) * torch.polar(torch.ones_like(angle),
                                                                       angle)).flatten(2),
        lambda: (randn(2, 8, 8), randn(8, 4))),
}

FFT = {
    "fft_rfft_magnitude": (lambda x: torch.fft.rfft(x).abs(), lambda: (randn(3, 16),)),
    "fft_rfft_ortho_odd": (lambda x: torch.fft.rfft(x, n=9, norm="ortho"), lambda: (randn(2, 12),)),
    "fft_fft_complex": (lambda z: torch.fft.fft(z), _z),
    "fft_fft_real_dim0": (lambda x: torch.fft.fft(x, dim=0), lambda: (randn(8, 3),)),
    "fft_ifft_forward_norm": (lambda z: torch.fft.ifft(z, norm="forward"), _z),
    "fft_irfft": (lambda z: torch.fft.irfft(z), lambda: (crandn(3, 5),)),
    "fft_irfft_odd_length": (lambda z: torch.fft.irfft(z, n=9), lambda: (crandn(5),)),
    "fft_round_trip": (lambda x: torch.fft.irfft(torch.fft.rfft(x), n=x.shape[-1]),
                       lambda: (randn(4, 10),)),
    "fft_fft2": (lambda x: torch.fft.fft2(x), lambda: (randn(2, 4, 6),)),
    "fft_ifft2_complex": (lambda z: torch.fft.ifft2(z), lambda: (crandn(4, 4),)),
    "fft_rfft2_irfft2": (lambda x: torch.fft.irfft2(torch.fft.rfft2(x) * 0.5, s=(6, 8)),
                         lambda: (randn(2, 6, 8),)),
    "fft_fftn_all_dims": (lambda x: torch.fft.fftn(x), lambda: (randn(3, 4, 5),)),
    "fft_spectral_filter": (
        lambda x, w: torch.fft.irfft(torch.fft.rfft(x, dim=1) * torch.view_as_complex(w),
                                     n=16, dim=1),
        lambda: (randn(2, 16, 3), randn(9, 3, 2))),
    "fft_power_spectrum": (lambda x: torch.fft.rfft(x, norm="ortho").abs() ** 2,
                           lambda: (randn(4, 32),)),
}

for _table in (COMPLEX_IN_OUT, COMPLEX_TO_REAL, REAL_TO_COMPLEX, FFT):
    for _name, (_forward, _inputs) in _table.items():
        register(_name, _forward, _inputs, rtol=1e-4, atol=1e-4)


class ComplexWeights(torch.nn.Module):
    """A complex parameter and a complex buffer."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn(6, 3, dtype=torch.complex64))
        self.register_buffer("phase", torch.polar(torch.ones(3), torch.randn(3)))

    def forward(self, z):
        return (z @ self.weight) * self.phase


@case(inputs=_z, module=True, atol=1e-4)
def complex_parameter_and_buffer():
    return ComplexWeights()


class SpectralConv1d(torch.nn.Module):
    """The spectral layer of a Fourier neural operator: rfft, a complex
    weight per kept mode, irfft."""

    def __init__(self, channels: int = 4, modes: int = 5):
        super().__init__()
        self.modes = modes
        self.weight = torch.nn.Parameter(
            torch.randn(channels, channels, modes, dtype=torch.complex64) / channels)

    def forward(self, x):
        spectrum = torch.fft.rfft(x)
        mixed = torch.einsum("bim,iom->bom", spectrum[..., :self.modes], self.weight)
        full = torch.zeros(x.shape[0], self.weight.shape[1], x.shape[-1] // 2 + 1,
                           dtype=torch.complex64)
        full[..., :self.modes] = mixed
        return torch.fft.irfft(full, n=x.shape[-1])


@case(inputs=lambda: (randn(2, 4, 16),), module=True, atol=1e-4)
def complex_fourier_layer():
    return SpectralConv1d()


SCATTERS = {
    "complex_masked_fill_real_value": (lambda z: z.masked_fill(z.real > 0, 2.5), _z),
    "complex_masked_fill_complex_value": (lambda z: z.masked_fill(z.imag > 0, 1 - 1j), _z),
    "complex_pad_with_value": (lambda z: torch.nn.functional.pad(z, (1, 1), value=3.0), _z),
    "complex_slice_assign_real": (lambda z, x: _assigned(z, x), lambda: (crandn(4, 6), randn(4, 2))),
}


def _assigned(z, x):
    z = z.clone()
    z[:, 1:3] = x
    return z


for _name, (_forward, _inputs) in SCATTERS.items():
    register(_name, _forward, _inputs, rtol=1e-4, atol=1e-4)
