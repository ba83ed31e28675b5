"""Features layer: filtering, kinematics, zones and gait on the pose Dataset (no torch)."""
