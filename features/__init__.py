"""Features layer: filtering, kinematics, zones and gait on the pose Dataset (no torch).

Modules (pure functions on the pose Dataset of :mod:`pose.dataset`; results are named
DataArrays with ``attrs["units"]`` or tidy pandas tables):

- :mod:`features.filters`: ``filter_by_confidence``, ``remove_jumps``, ``interpolate_gaps``,
  ``filter_median``, ``filter_savgol``, ``filter_kalman`` (Kalman + RTS smoother with
  confidence-weighted measurements; :mod:`pose.kalman` holds the compiled kernels).
- :mod:`features.kinematics`: velocity, speed, acceleration, heading, angular velocity,
  joint angles, distances, body length, hull area, distance travelled, egocentric alignment,
  calibration (``calibrate_px_per_mm``, ``to_mm``).
- :mod:`features.zones`: ``Polygon``, ``Circle``, ``ZoneSet``, assay builders, occupancy,
  entries with a minimum dwell time, bout tables, JSON load/save.
- :mod:`features.gait`: ``detect_step_cycles`` (toe-off / touch-down at sub-frame
  precision), ``summarize_gait`` (symmetry, inter-limb phase, base of support).
- :mod:`features.table`: ``compute_feature_table`` and ``summarize_session``.
"""
