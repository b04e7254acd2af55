// Package sdktest checks translated streams and bodies with the real
// openai-go and anthropic-sdk-go clients. It holds only tests and lives
// apart from package translate so that package's fuzz targets build
// without the SDKs.
package sdktest
