"""The compiled Kalman filter / RTS smoother against filterpy, and its process-noise estimate."""

from __future__ import annotations

import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise
from filterpy.kalman import KalmanFilter, rts_smoother

from pose.kalman import estimate_process_noise, kalman_smooth, model_matrices


@pytest.mark.parametrize("order", [2, 3])
def test_kalman_equals_filterpy(order):
    rng = np.random.default_rng(order)
    n, dt, q = 400, 1 / 30, 50.0
    z = np.cumsum(np.cumsum(rng.normal(size=n))) * 0.05 + rng.normal(0, 1.0, n)
    z[60:80] = np.nan
    z[:4] = np.nan
    r = rng.uniform(0.5, 6.0, n)
    f, qm = model_matrices(dt, order, q)
    np.testing.assert_allclose(qm, Q_discrete_white_noise(order, dt, q**2), rtol=1e-12)
    p0 = np.array([0.0, 100.0**2, 1000.0**2][:order])
    kf = KalmanFilter(dim_x=order, dim_z=1)
    kf.F, kf.Q, kf.H = f, qm, np.eye(1, order)
    k0 = 4
    kf.x = np.zeros((order, 1))
    kf.x[0] = z[k0]
    kf.P = np.diag(p0)
    kf.P[0, 0] = r[k0]
    xs, ps = [], []
    for t in range(k0, n):
        if t > k0:
            kf.predict()
        kf.update(None if np.isnan(z[t]) else z[t], R=r[t])
        xs.append(kf.x.copy())
        ps.append(kf.P.copy())
    xs, ps = np.array(xs), np.array(ps)
    filt = kalman_smooth(z[:, None], r[:, None], dt=dt, order=order, process_noise=q, p0_diag=p0,
                         smooth=False, return_state=True)
    np.testing.assert_allclose(filt[k0:, 0, :], xs[:, :, 0], atol=1e-9, rtol=0)
    sm_ref, _, _, _ = rts_smoother(xs, ps, [f] * len(xs), [qm] * len(xs))
    sm = kalman_smooth(z[:, None], r[:, None], dt=dt, order=order, process_noise=q, p0_diag=p0,
                       return_state=True)
    np.testing.assert_allclose(sm[k0:, 0, 0], sm_ref[:, 0, 0], atol=1e-9, rtol=0)
    np.testing.assert_allclose(sm[k0:, 0, 1], sm_ref[:, 1, 0], atol=1e-8, rtol=0)
    assert np.isnan(sm[:k0]).all()
    # the same series repeated in many columns gives the same answer in each
    many = kalman_smooth(np.tile(z[:, None], (1, 5)), np.tile(r[:, None], (1, 5)), dt=dt,
                         order=order, process_noise=q, p0_diag=p0)
    np.testing.assert_allclose(many, np.tile(sm[:, :, 0], (1, 5)), atol=1e-12, equal_nan=True)


def test_process_noise_estimate_recovers_simulated_value():
    rng = np.random.default_rng(5)
    dt, q_true, n = 1 / 30, 400.0, 20000
    acc = rng.normal(0, q_true, (n, 4))  # piecewise-constant white acceleration
    vel = np.cumsum(acc * dt, axis=0)
    pos = np.cumsum(vel * dt + 0.5 * acc * dt**2, axis=0)
    z = pos + rng.normal(0, 1.0, pos.shape)
    q = estimate_process_noise(z, 1.0, dt, 2)
    assert q == pytest.approx(q_true, rel=0.25)
