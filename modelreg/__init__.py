"""modelreg"""
