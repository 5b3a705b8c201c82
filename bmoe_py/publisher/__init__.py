"""publisher"""
