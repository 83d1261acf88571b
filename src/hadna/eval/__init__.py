"""hadna.eval"""
