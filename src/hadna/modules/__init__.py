"""hadna.modules"""
