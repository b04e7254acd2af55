// Package openai translates between the OpenAI Chat Completions wire
// format and Metis's provider-neutral model in package ir: requests both
// ways, complete responses both ways, stream chunks both ways and error
// bodies. It also serves OpenAI-compatible servers, which speak the same
// format.
//
// Decode* functions read OpenAI JSON into ir values; Encode* functions
// write ir values as OpenAI JSON. Nothing here performs I/O.
package openai
