"""The Avro schemas of onewindow's records (`avro/<Name>.v<N>.avsc`, every released
version kept), shipped as package data and read through `importlib.resources` by
`onewindow.codec`. No code lives here."""
