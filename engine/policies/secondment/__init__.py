"""policies/secondment"""
