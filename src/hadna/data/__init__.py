"""hadna.data"""
