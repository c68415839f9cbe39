"""grimsim.search"""
