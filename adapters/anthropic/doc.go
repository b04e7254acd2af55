// Package anthropic translates between the Anthropic Messages wire format
// and Metis's provider-neutral model in package ir: requests both ways,
// complete responses both ways, stream events both ways and error bodies.
//
// Decode* functions read Anthropic JSON into ir values; Encode* functions
// write ir values as Anthropic JSON. Nothing here performs I/O.
package anthropic
