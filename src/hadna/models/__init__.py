"""hadna.models"""
