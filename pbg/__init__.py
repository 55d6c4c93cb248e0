from ember.pbg.api import load
