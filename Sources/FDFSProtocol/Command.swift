/// A FastDFS command code (the `cmd` byte of the header).
public struct FDFSCommand: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    // MARK: Shared
    /// Every response carries this code.
    public static let response = FDFSCommand(rawValue: 100)
    public static let quit = FDFSCommand(rawValue: 82)
    public static let activeTest = FDFSCommand(rawValue: 111)

    // MARK: Tracker, client-facing
    public static let listOneGroup = FDFSCommand(rawValue: 90)
    public static let listAllGroups = FDFSCommand(rawValue: 91)
    public static let listStorage = FDFSCommand(rawValue: 92)
    public static let deleteStorage = FDFSCommand(rawValue: 93)
    public static let setTrunkServer = FDFSCommand(rawValue: 94)
    public static let queryStoreWithoutGroupOne = FDFSCommand(rawValue: 101)
    public static let queryFetchOne = FDFSCommand(rawValue: 102)
    public static let queryUpdate = FDFSCommand(rawValue: 103)
    public static let queryStoreWithGroupOne = FDFSCommand(rawValue: 104)
    public static let queryFetchAll = FDFSCommand(rawValue: 105)
    public static let queryStoreWithoutGroupAll = FDFSCommand(rawValue: 106)
    public static let queryStoreWithGroupAll = FDFSCommand(rawValue: 107)
    public static let deleteGroup = FDFSCommand(rawValue: 108)

    // MARK: Storage to tracker
    public static let storageChangeStatus = FDFSCommand(rawValue: 59)
    public static let storageGetMyIP = FDFSCommand(rawValue: 60)
    public static let storageFetchStorageIDs = FDFSCommand(rawValue: 69)
    public static let storageGetServerID = FDFSCommand(rawValue: 70)
    public static let storageGetStatus = FDFSCommand(rawValue: 71)
    public static let storageParameterRequest = FDFSCommand(rawValue: 75)
    public static let storageReportStatus = FDFSCommand(rawValue: 76)
    public static let storageChangelogRequest = FDFSCommand(rawValue: 77)
    public static let storageSyncDestQuery = FDFSCommand(rawValue: 79)
    public static let storageJoin = FDFSCommand(rawValue: 81)
    public static let storageBeat = FDFSCommand(rawValue: 83)
    public static let storageReportDiskUsage = FDFSCommand(rawValue: 84)
    public static let storageReplicaChange = FDFSCommand(rawValue: 85)
    public static let storageSyncSourceRequest = FDFSCommand(rawValue: 86)
    public static let storageSyncDestRequest = FDFSCommand(rawValue: 87)
    public static let storageSyncNotify = FDFSCommand(rawValue: 88)
    public static let storageSyncReport = FDFSCommand(rawValue: 89)
    public static let storageGetGroupName = FDFSCommand(rawValue: 109)

    // MARK: Storage, client-facing
    public static let reportServerID = FDFSCommand(rawValue: 9)
    public static let uploadFile = FDFSCommand(rawValue: 11)
    public static let deleteFile = FDFSCommand(rawValue: 12)
    public static let setMetadata = FDFSCommand(rawValue: 13)
    public static let downloadFile = FDFSCommand(rawValue: 14)
    public static let getMetadata = FDFSCommand(rawValue: 15)
    public static let uploadSlaveFile = FDFSCommand(rawValue: 21)
    public static let queryFileInfo = FDFSCommand(rawValue: 22)
    public static let uploadAppenderFile = FDFSCommand(rawValue: 23)
    public static let appendFile = FDFSCommand(rawValue: 24)
    public static let modifyFile = FDFSCommand(rawValue: 34)
    public static let truncateFile = FDFSCommand(rawValue: 36)
    public static let regenerateAppenderFilename = FDFSCommand(rawValue: 38)

    // MARK: Storage to storage
    public static let syncCreateFile = FDFSCommand(rawValue: 16)
    public static let syncDeleteFile = FDFSCommand(rawValue: 17)
    public static let syncUpdateFile = FDFSCommand(rawValue: 18)
    public static let syncCreateLink = FDFSCommand(rawValue: 19)
    public static let syncAppendFile = FDFSCommand(rawValue: 25)
    public static let syncModifyFile = FDFSCommand(rawValue: 35)
    public static let syncTruncateFile = FDFSCommand(rawValue: 37)
    public static let syncRenameFile = FDFSCommand(rawValue: 40)

    public var description: String {
        Self.names[rawValue].map { "\($0)(\(rawValue))" } ?? "cmd(\(rawValue))"
    }

    private static let names: [UInt8: String] = [
        100: "RESP", 82: "QUIT", 111: "ACTIVE_TEST",
        90: "LIST_ONE_GROUP", 91: "LIST_ALL_GROUPS", 92: "LIST_STORAGE", 93: "DELETE_STORAGE",
        94: "SET_TRUNK_SERVER", 101: "QUERY_STORE_WITHOUT_GROUP_ONE", 102: "QUERY_FETCH_ONE",
        103: "QUERY_UPDATE", 104: "QUERY_STORE_WITH_GROUP_ONE", 105: "QUERY_FETCH_ALL",
        106: "QUERY_STORE_WITHOUT_GROUP_ALL", 107: "QUERY_STORE_WITH_GROUP_ALL", 108: "DELETE_GROUP",
        59: "STORAGE_CHANGE_STATUS", 60: "STORAGE_GET_MY_IP", 69: "STORAGE_FETCH_STORAGE_IDS",
        70: "STORAGE_GET_SERVER_ID", 71: "STORAGE_GET_STATUS", 75: "STORAGE_PARAMETER_REQ",
        76: "STORAGE_REPORT_STATUS", 77: "STORAGE_CHANGELOG_REQ", 79: "STORAGE_SYNC_DEST_QUERY",
        81: "STORAGE_JOIN", 83: "STORAGE_BEAT", 84: "STORAGE_REPORT_DISK_USAGE",
        85: "STORAGE_REPLICA_CHG", 86: "STORAGE_SYNC_SRC_REQ", 87: "STORAGE_SYNC_DEST_REQ",
        88: "STORAGE_SYNC_NOTIFY", 89: "STORAGE_SYNC_REPORT", 109: "STORAGE_GET_GROUP_NAME",
        9: "REPORT_SERVER_ID", 11: "UPLOAD_FILE", 12: "DELETE_FILE", 13: "SET_METADATA",
        14: "DOWNLOAD_FILE", 15: "GET_METADATA", 16: "SYNC_CREATE_FILE", 17: "SYNC_DELETE_FILE",
        18: "SYNC_UPDATE_FILE", 19: "SYNC_CREATE_LINK", 21: "UPLOAD_SLAVE_FILE",
        22: "QUERY_FILE_INFO", 23: "UPLOAD_APPENDER_FILE", 24: "APPEND_FILE", 25: "SYNC_APPEND_FILE",
        34: "MODIFY_FILE", 35: "SYNC_MODIFY_FILE", 36: "TRUNCATE_FILE", 37: "SYNC_TRUNCATE_FILE",
        38: "REGENERATE_APPENDER_FILENAME", 40: "SYNC_RENAME_FILE",
    ]
}
