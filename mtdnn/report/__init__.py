"""The results tables: the GLUE table (`mtdnn report glue`) and the domain-adaptation table and plot (`mtdnn report adapt`)."""
