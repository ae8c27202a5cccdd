"""`mobilise simulate`: the real engine in virtual time, on a throwaway database.

`run` drives the journey passes from due time to due time; `population` makes up the
people and what they do; `report` tallies the outcome. The CLI only parses and prints.
"""
