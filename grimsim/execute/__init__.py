"""grimsim.execute"""
