"""The placement rules, one module each: admission, capacity, conflicts, spread, MIG fit.

Every other place that needs a rule calls the module that defines it.
"""
