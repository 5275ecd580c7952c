import ArgumentParser

@main
struct FDFS: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fdfs",
        abstract: "Talk to a FastDFS cluster: upload, download, delete, inspect and monitor files.",
        subcommands: [Upload.self, Download.self, Delete.self, Info.self, Locate.self, Meta.self, Append.self, Truncate.self, Monitor.self]
    )
}
