"""nstaudio.mel: MelGAN-VC's features and the way back from mel bands to linear power."""

import numpy as np
import pytest

from nstaudio import mel
from nstaudio.errors import ParameterError

from conftest import finish_counting


def _bank():
    return mel.band_average(mel.mel_filterbank(16000, 1152, 192))


def test_band_average_rows_sum_to_one():
    bank = _bank()
    assert bank.shape == (192, 577) and np.all(bank >= 0)
    np.testing.assert_allclose(bank.sum(axis=1), 1.0, rtol=1e-12)


def test_unit_scaling_round_trips_inside_its_range_and_clips_outside():
    power = np.array([1e-12, 1e-10, 1e-5, 0.5, 1.0, 3.0])
    unit = mel.power_to_unit(power)
    assert unit.dtype == np.float32 and unit[0] == unit[1] == -1 and unit[-1] == unit[-2] == 1
    np.testing.assert_allclose(mel.unit_to_power(unit)[1:5], power[1:5], rtol=1e-5)


def test_mel_to_power_fits_the_bands_and_stays_non_negative():
    bank = _bank()
    rng = np.random.default_rng(0)
    truth = rng.random((2, 577, 40)) ** 4  # sparse-ish spectra, two channels
    bands = bank @ truth
    start = mel.mel_to_power(bands, bank, n_iter=0)
    fitted = mel.mel_to_power(bands, bank, n_iter=50)
    assert fitted.shape == truth.shape and fitted.dtype == np.float32 and np.all(fitted >= 0)
    assert mel.mel_convergence(bands, fitted, bank) < mel.mel_convergence(bands, start, bank) - 20
    np.testing.assert_allclose(mel.mel_to_power(bands[1], bank, n_iter=50), fitted[1], rtol=1e-5, atol=1e-9)


def test_mel_to_power_refuses_what_it_cannot_invert():
    bank = _bank()
    with pytest.raises(ParameterError, match="bands"):
        mel.mel_to_power(np.ones((10, 5)), bank)
    with pytest.raises(ParameterError, match="non-negative"):
        mel.mel_to_power(np.ones((192, 5)), -bank)


@pytest.mark.parametrize("frames, n_iter", [(1, 30), (7, 50), (3, 0)])
def test_the_numba_inversion_is_the_numpy_references(frames, n_iter):
    from nstaudio.kernels import cpu

    bank = _bank()
    rng = np.random.default_rng(frames)
    bands = bank @ (rng.random((2, 577, frames)) ** 4)
    inversion = mel.MelInversion(bank)
    expected = inversion.power(bands, n_iter=n_iter)
    got = inversion.power(bands, n_iter=n_iter, backend=cpu)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7 * float(expected.max()))
    np.testing.assert_array_equal(mel.mel_to_power(bands, bank, n_iter=n_iter), expected)  # the one-off form


@pytest.mark.parametrize("steps", [1, 7, 30, 100])
def test_the_inversion_in_pieces_is_the_whole_to_the_bit(steps):
    """A stream inverts a window's frames a few FISTA steps at a time: the state carried between the pieces
    gives what one call gives, on both backends, with a stop after every ``steps`` steps."""
    from nstaudio.kernels import cpu, numpy_backend

    bank = _bank()
    bands = bank @ (np.random.default_rng(steps).random((577, 5)) ** 4)
    inversion = mel.MelInversion(bank)
    for backend in (numpy_backend, cpu):
        whole = inversion.power(bands, n_iter=30, backend=backend)
        power, stops = finish_counting(inversion.power_in_pieces(bands, n_iter=30, backend=backend, steps=steps))
        np.testing.assert_array_equal(power, whole)
        assert stops == -(-30 // steps) - 1
    with pytest.raises(ParameterError, match="steps"):
        next(inversion.power_in_pieces(bands, n_iter=30, steps=0))
