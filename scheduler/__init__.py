"""The control loop: one MPC cycle per site, the fleet runner and the injectable clock."""
