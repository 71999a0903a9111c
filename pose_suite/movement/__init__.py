"""Movement data: from keypoint results to clean trajectories, angles, metres and OpenSim files."""
