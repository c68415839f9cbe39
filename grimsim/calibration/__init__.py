"""grimsim.calibration"""
