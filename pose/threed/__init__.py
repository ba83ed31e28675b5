"""3D pose: multi-camera calibration (:mod:`pose.threed.calibration`), anipose's calibration
files (:mod:`pose.threed.cameras`), boards (:mod:`pose.threed.board`) and triangulation
(:mod:`pose.threed.triangulation`). Torch-free; OpenCV and scipy only."""
