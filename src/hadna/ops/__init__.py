"""hadna.ops"""
