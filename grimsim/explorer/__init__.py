"""grimsim.explorer"""
