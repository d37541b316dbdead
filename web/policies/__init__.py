"""Each policy package's pages: web/policies/<name>.py, named by its ProcessPackage.web."""
