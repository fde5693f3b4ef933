"""Who the viewer is: the authenticated principal, their IP address and their country."""
