module github.com/foldkit/foldkit

go 1.26.8

require (
	codeberg.org/sbinet/npyio v0.14.0
	gonum.org/v1/gonum v0.17.0
	gonum.org/v1/netlib v0.0.0-20220323200511-14de99971b2d
)

require (
	github.com/nlpodyssey/gopickle v0.3.0 // indirect
	golang.org/x/exp v0.0.0-20191002040644-a1355ae1e2c3 // indirect
	golang.org/x/text v0.34.0 // indirect
)
