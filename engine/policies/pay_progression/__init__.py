"""policies/pay_progression"""
