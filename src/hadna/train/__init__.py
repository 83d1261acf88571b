"""hadna.train"""
