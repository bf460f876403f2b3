"""Who is calling: principals and the sources that produce them (plugin token, named tokens, JWT)."""
